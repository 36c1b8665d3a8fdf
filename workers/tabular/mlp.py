"""train.mlp: a torch multi-layer perceptron, one cross-validation fold per shard (like train.gbdt).

Input: numerics standardised with the fold's mean and deviation (a missing value becomes the
mean, plus a 0/1 "was missing" column for each numeric that has gaps); each categorical goes
through its own embedding (index 0 = missing or unknown). Early stopping on the loss of the
fold's validation rows (binary: logistic, multiclass: cross-entropy over one output per class,
regression: squared error): a `valid_fraction` share of its training rows, so that the out-of-fold
rows stay unseen by every choice, the stopping epoch included. The best epoch's weights are kept.

Same seed on CPU, same model: torch.manual_seed, a seeded batch order and torch's deterministic
algorithms. On a GPU (when the step asks for one and one is present) results may differ in the
last digits. Learning curves (loss and AUC, or RMSE, per epoch) go to TensorBoard event files
under the shard's `tensorboard/`.

The model object keeps its weights as numpy arrays and rebuilds the network on first use, on CPU:
unpickling it does not need torch, predicting does.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from workers.device import choose
from workers.request import ShardResult, StepRequest
from workers.tabular import folds
from workers.tabular.models import TabularModel
from workers.tabular.schema import TableSchema
from workers.tabular.train import Fitted, Fold, train_fold
from workers.tensorboard import curves

CLIP = 10.0  # standardised values beyond this many deviations are clipped: one outlier cannot saturate a unit
EVAL_BATCH = 65536


def mlp(request: StepRequest) -> ShardResult:
    return train_fold(request, fit_mlp)


# --- preprocessing ----------------------------------------------------------------

def fit_preprocessing(X: Any, y: np.ndarray, schema: TableSchema) -> dict[str, Any]:
    """Standardisation and imputation statistics of the rows the network is fitted on."""
    values = X[schema.numeric].to_numpy(dtype="float64") if schema.numeric else np.empty((len(X), 0))
    with np.errstate(all="ignore"):
        mean = np.nan_to_num(np.nanmean(values, axis=0)) if len(values) else np.zeros(values.shape[1])
        std = np.nanstd(values, axis=0) if len(values) else np.ones(values.shape[1])
    std = np.where(np.isfinite(std) & (std > 0), std, 1.0)
    gaps = [c for i, c in enumerate(schema.numeric) if np.isnan(values[:, i]).any()]
    prep = {"mean": mean.tolist(), "std": std.tolist(), "indicators": gaps}
    if schema.task == "regression":  # the network learns the standardised target
        prep["y_mean"], prep["y_std"] = float(np.mean(y)), float(np.std(y) or 1.0)
    return prep


def encode(X: Any, schema: TableSchema, prep: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(numeric matrix float32, category index matrix int64) of a `schema.frame` output."""
    values = X[schema.numeric].to_numpy(dtype="float64") if schema.numeric else np.empty((len(X), 0))
    missing = np.isnan(values)
    scaled = np.clip((values - np.asarray(prep["mean"])) / np.asarray(prep["std"]), -CLIP, CLIP)
    scaled[missing] = 0.0  # the mean
    flags = [missing[:, schema.numeric.index(c)] for c in prep["indicators"]]
    numeric = np.column_stack([scaled, *flags]) if flags else scaled
    codes = [X[c].cat.codes.to_numpy(dtype="int64") + 1 for c in schema.categorical]  # -1 (missing) -> 0
    categories = np.column_stack(codes) if codes else np.zeros((len(X), 0), dtype="int64")
    return numeric.astype("float32"), categories


def architecture(schema: TableSchema, prep: dict[str, Any], settings: Any) -> dict[str, Any]:
    cardinalities = [len(c) + 1 for c in schema.categorical.values()]
    return {
        "numeric_width": len(schema.numeric) + len(prep["indicators"]),
        "cardinalities": cardinalities,
        "embedding_dims": [min(settings.embedding_dim, (n + 1) // 2) for n in cardinalities],
        "hidden": list(settings.hidden),
        "dropout": settings.dropout,
        "outputs": len(schema.classes) if schema.task == "multiclass" else 1,
    }


def build_net(config: dict[str, Any]) -> Any:
    import torch
    from torch import nn

    class TabularNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embeddings = nn.ModuleList(
                nn.Embedding(n, d) for n, d in zip(config["cardinalities"], config["embedding_dims"]))
            width = config["numeric_width"] + sum(config["embedding_dims"])
            layers: list[nn.Module] = []
            for units in config["hidden"]:
                layers += [nn.Linear(width, units), nn.ReLU(), nn.Dropout(config["dropout"])]
                width = units
            layers.append(nn.Linear(width, config.get("outputs", 1)))
            self.body = nn.Sequential(*layers)

        def forward(self, numeric: Any, categories: Any) -> Any:
            parts = [numeric, *(embed(categories[:, i]) for i, embed in enumerate(self.embeddings))]
            out = self.body(torch.cat(parts, dim=1))
            return out.squeeze(1) if out.shape[1] == 1 else out  # (rows,) or (rows, classes)

    return TabularNet()


# --- the model object ---------------------------------------------------------------

class MLPModel(TabularModel):
    def __init__(self, schema: TableSchema, prep: dict[str, Any], config: dict[str, Any],
                 state: dict[str, np.ndarray], best_epoch: int):
        self.schema = schema
        self.prep = prep
        self.config = config
        self.state = state  # numpy arrays: the pickle needs no torch
        self.best_epoch = best_epoch
        self._net = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_net": None}

    def _predict(self, X: Any) -> Any:
        import torch

        if self._net is None:
            net = build_net(self.config)
            net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in self.state.items()})
            self._net = net.eval()
        numeric, categories = encode(X, self.schema, self.prep)
        out = _outputs(self._net, torch.from_numpy(numeric), torch.from_numpy(categories))
        return _to_prediction(out.numpy().astype("float64"), self.schema.task, self.prep)

    def __repr__(self) -> str:
        return f"MLPModel({self.task}, {len(self.feature_names)} features, hidden={self.config['hidden']})"


def _outputs(net: Any, numeric: Any, categories: Any) -> Any:
    """The network's raw outputs (logits or standardised values) on CPU, in eval mode, in chunks."""
    import torch

    net.eval()
    with torch.inference_mode():
        parts = [net(numeric[i:i + EVAL_BATCH], categories[i:i + EVAL_BATCH]).float().cpu()
                 for i in range(0, len(numeric), EVAL_BATCH)]
    return torch.cat(parts) if parts else torch.empty(0)


def _to_prediction(out: np.ndarray, task: str, prep: dict[str, Any]) -> np.ndarray:
    if task == "binary":
        return 1.0 / (1.0 + np.exp(-out))
    if task == "multiclass":
        return softmax(out)
    return out * prep["y_std"] + prep["y_mean"]


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


# --- training ------------------------------------------------------------------------

def fit_mlp(fold: Fold) -> Fitted:
    import torch

    s, schema = fold.request.settings, fold.schema
    device = choose(s.device, "train.mlp", fallback_note="training on CPU")
    print(f"train.mlp: training on {device}", flush=True)
    fit_pos, valid_pos = folds.holdout(fold.y[fold.train_rows], s.valid_fraction, s.seed, schema.task)
    fit_rows, valid_rows = fold.train_rows[fit_pos], fold.train_rows[valid_pos]
    X = schema.frame(fold.table, where="the training table")
    prep = fit_preprocessing(X.iloc[fit_rows], fold.y[fit_rows], schema)
    config = architecture(schema, prep, s)
    numeric, categories = encode(X, schema, prep)
    target = fold.y.astype("int64" if schema.task == "multiclass" else "float32")
    if schema.task == "regression":
        target = (target - prep["y_mean"]) / prep["y_std"]

    def tensors(rows: np.ndarray) -> tuple[Any, Any, Any]:
        return (torch.from_numpy(numeric[rows]).to(device), torch.from_numpy(categories[rows]).to(device),
                torch.from_numpy(target[rows]).to(device))

    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(device == "cpu")  # CUDA kernels may reorder sums: exact only on CPU
    try:
        torch.manual_seed(s.seed)
        net = build_net(config).to(device)
        with curves(fold.request.shard_path("tensorboard")) as tb:
            best_epoch, state, epochs = _fit(net, tensors(fit_rows), tensors(valid_rows), fold, s, tb)
    finally:
        torch.use_deterministic_algorithms(deterministic)
    model = MLPModel(schema, prep, config, {k: v.cpu().numpy() for k, v in state.items()}, best_epoch)
    return Fitted(model, outputs={"tensorboard": fold.request.shard_path("tensorboard")},
                  metrics={"best_epoch": best_epoch, "epochs": epochs, "device": device})


def _fit(net: Any, fit: tuple, valid: tuple, fold: Fold, s: Any, tb: Any) -> tuple[int, dict, int]:
    """Mini-batch Adam until the validation loss stops improving; (best epoch, its weights, epochs run)."""
    import torch

    task = fold.schema.task
    loss_fn = {"binary": torch.nn.BCEWithLogitsLoss, "multiclass": torch.nn.CrossEntropyLoss}.get(task, torch.nn.MSELoss)()
    optimizer = torch.optim.Adam(net.parameters(), lr=s.learning_rate, weight_decay=s.weight_decay)
    order = torch.Generator().manual_seed(s.seed)  # the batch order, on CPU whatever the device
    rows = len(fit[0])
    best_loss, best_epoch, best_state, waited = float("inf"), 0, None, 0
    for epoch in range(1, s.epochs + 1):
        net.train()
        permutation = torch.randperm(rows, generator=order).to(fit[0].device)
        for start in range(0, rows, s.batch_size):
            batch = permutation[start:start + s.batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(net(fit[0][batch], fit[1][batch]), fit[2][batch])
            loss.backward()
            optimizer.step()
        scalars = {**_epoch_scores(net, fit, loss_fn, task, "train"), **_epoch_scores(net, valid, loss_fn, task, "valid")}
        tb.add(scalars, epoch)
        print(f"train.mlp: epoch {epoch:3d} " + " ".join(f"{k} {v:.4f}" for k, v in scalars.items() if v is not None),
              flush=True)
        if scalars["loss/valid"] < best_loss - 1e-6:
            best_loss, best_epoch, waited = scalars["loss/valid"], epoch, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            waited += 1
            if waited >= s.patience:
                print(f"train.mlp: early stop after epoch {epoch}: no better validation loss for {waited} epochs; "
                      f"keeping epoch {best_epoch}", flush=True)
                break
    if best_state is None:  # the validation loss was never finite: keep the last weights, say so
        print("train.mlp: the validation loss was never finite; keeping the last epoch's weights", flush=True)
        best_epoch, best_state = epoch, net.state_dict()
    return best_epoch, best_state, epoch


def _epoch_scores(net: Any, data: tuple, loss_fn: Any, task: str, part: str) -> dict[str, float | None]:
    from workers.tabular import metrics

    out = _outputs(net, data[0], data[1])
    target = data[2].cpu() if task == "multiclass" else data[2].float().cpu()
    scores = {f"loss/{part}": float(loss_fn(out, target))}
    y = target.numpy()
    if task == "multiclass":
        scores[f"auc/{part}"] = metrics.auc(y, softmax(out.numpy().astype("float64")))
    elif task == "binary":
        scores[f"auc/{part}"] = metrics.auc(y, out.numpy())  # logits rank rows like probabilities do
    else:
        scores[f"rmse/{part}"] = float(np.sqrt(np.mean((out.numpy() - y) ** 2)))  # in standard deviations of y
    return scores
