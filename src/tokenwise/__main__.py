from tokenwise.cli import main

main()
