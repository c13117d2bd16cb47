"""How a state's work flows: Lambda invocation, Retry and Catch, input and output processing."""
