"""models: agents, mixers, learner, buffer, runner and the training loop (torch; never imports Qt)."""
