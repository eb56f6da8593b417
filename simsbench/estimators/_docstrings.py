"""Parameter and attribute sections shared by the deep estimators' docstrings.

Each model's class docstring is assembled from its own parameters and these
fragments (``__doc__ += ...``), so the shared parameters are described once.
"""

__all__ = ["_ATTRIBUTES_DOC", "_COMMON_DOC", "_MULTITASK_DOC"]

_COMMON_DOC = """
    modalities : tuple of str, default=("text", "audio", "vision")
        Modalities the model uses; ``X`` must hold them.  A subset gives a
        unimodal or bimodal variant of the architecture.
    batch_size : int
        Mini-batch size.
    learning_rate : float
        Adam learning rate.
    weight_decay : float
        Adam (coupled L2) weight decay.
    max_epochs : int or None, default=None
        Cap on training epochs; None trains until early stopping, as the
        reference does (correction ``epoch_cap``: 100).
    early_stop : int, default=8
        Stop after this many epochs without a validation-loss improvement.
    tol : float, default=1e-6
        Decrease of the validation loss that counts as an improvement.
    selection : {"reference", "weighted"}, default="reference"
        How the validation loss that selects the epoch is computed.
        ``"reference"`` (MMSA's trainers): the unweighted mean of the
        per-batch mean losses over freshly shuffled validation batches,
        rounded to 4 decimals; an epoch improves when its loss is
        ``<= best - tol``.  ``"weighted"`` (correction ``selection``): the
        sample-weighted mean in a fixed order, unrounded, improving when
        ``< best - tol``.
    validation_fraction : float, default=0.2
        Share of the labelled training rows held out for model selection
        when ``fit`` gets no ``X_valid``.
    device : str, default="cpu"
        Torch device.
    precision : {"float32", "bfloat16"}, default="float32"
        Arithmetic of the forward passes.  ``"bfloat16"`` runs them under
        ``torch.autocast`` (matrix products and LSTMs in bfloat16, weights,
        gradients, optimizer state and losses in float32): an opt-in for
        speed on CPUs with bfloat16 instructions and on GPUs; it changes the
        numbers, so it is not the reference configuration.
    random_state : int, RandomState instance or None, default=None
        Seeds weights, shuffling, dropout and the internal split; the same
        int gives bit-identical predictions on CPU.
    verbose : int, default=0
        1 prints skorch's per-epoch table.
    n_threads : int or None, default=None
        Torch intra-op threads during fit/predict (None: torch's default).
"""

_ATTRIBUTES_DOC = """
    Attributes
    ----------
    net_ : skorch.NeuralNet
        The fitted private skorch net (``net_.module_`` is the torch module).
    n_epochs_, best_epoch_ : int
        Epochs trained and the epoch whose weights were restored.
    train_loss_curve_, valid_loss_curve_ : list of float
        Per-epoch losses.
    feature_dims_, seq_lens_ : dict
        Input shapes seen in ``fit``.
    n_params_ : int
        Trainable parameters.
"""
"""The fitted attributes every deep estimator has (docstring text)."""

_MULTITASK_DOC = """
    tasks : tuple of str, default=("T", "A", "V")
        Active unimodal tasks, any subset of ``"T"``, ``"A"``, ``"V"``; the M
        task is always trained.  ``()`` trains M alone (the CH-SIMS paper's
        Table 5 rows).  Inactive heads still exist but get no loss.
    loss_weights : tuple of 4 float
        Weights of the M, T, A and V losses (training and validation).
"""
