"""Training kgrec's model: settings, batches and negatives, losses, the loop, calibration.

    from kgrec.train import TrainConfig, fit
    trained = fit(train_kg, features, TrainConfig(epochs=30))   # a TrainedModel

Where to look: ``config.py`` the settings; ``sampling.py`` how a step's pairs and negatives are
drawn; ``losses.py`` the sampled softmax; ``cold_views.py`` how training prepares the model for
new items and users; ``calibration.py`` the fits after training that place new items;
``loop.py`` the epochs, early stopping and checkpoints; ``trained.py`` what training returns.
"""

from .config import TrainConfig
from .loop import fit
from .trained import TrainedModel

__all__ = ["TrainConfig", "TrainedModel", "fit"]
