from specforge.cli import main

main()
