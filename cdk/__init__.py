"""The Ramparts CDK app: stacks and the constructs users add to their own apps."""
