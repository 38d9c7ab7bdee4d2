from tcwebhook.cli import main

main()
