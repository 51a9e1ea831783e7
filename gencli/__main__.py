from gencli.launcher import main

main()
