from appyard.cli import main

main()
