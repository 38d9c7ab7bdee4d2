"""What the tests share: fakes of Tradecloud's servers, ways to run the CLI and ``serve``,
events and settings to build, and a throwaway PostgreSQL. Nothing here is a test or a fixture."""
