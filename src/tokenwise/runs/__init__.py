"""Where runs execute: the queue, the workers that claim runs, and the fenced event log."""
