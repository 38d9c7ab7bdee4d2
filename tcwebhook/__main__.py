from tcwebhook.cli import entry

entry()
