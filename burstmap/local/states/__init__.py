"""The states of the Amazon States Language, one module per state type, each in both query
languages (JSONPath and JSONata); definition.py checks a definition, interpreter.py runs it."""
