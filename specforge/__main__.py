from specforge.cli.commands import main

main()
