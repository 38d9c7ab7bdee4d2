"""The outbox: hand stored events on to the ERP side (directory, command and HTTP sinks)."""
