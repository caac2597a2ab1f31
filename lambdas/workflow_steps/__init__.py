"""The Step Functions task Lambda of the model workflows (create, update, delete) and their ASL."""
