"""Training stage: the trainer and the train-and-evaluate run."""
