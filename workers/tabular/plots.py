"""PNG plots of a binary classifier's quality, rendered headless.

matplotlib's object API (Figure + the Agg canvas) rather than pyplot: no global
backend state, no display needed, safe in any worker process.
"""
from __future__ import annotations

import io
from typing import Any, Mapping

SIZE = (5.0, 4.0)  # inches; at 100 dpi a plot stays well under 100 KB
DPI = 100


def _figure() -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def roc(y: Any, predictions: Mapping[str, Any], title: str = "ROC (out-of-fold)") -> bytes:
    """One ROC curve per model (name -> probability of class 1), AUC in the legend."""
    from sklearn.metrics import roc_auc_score, roc_curve

    fig, ax = _figure()
    for name, p in predictions.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, lw=1.5, label=f"{name} (AUC {roc_auc_score(y, p):.3f})")
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize="small")
    return _png(fig)


def calibration(y: Any, predictions: Mapping[str, Any], bins: int = 10,
                title: str = "Calibration (out-of-fold)") -> bytes:
    """Mean predicted probability against the observed rate, per quantile bin."""
    from sklearn.calibration import calibration_curve

    fig, ax = _figure()
    for name, p in predictions.items():
        observed, predicted = calibration_curve(y, p, n_bins=bins, strategy="quantile")
        ax.plot(predicted, observed, marker="o", ms=3, lw=1.2, label=name)
    ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="grey", label="perfect")
    ax.set(xlabel="mean predicted probability", ylabel="observed positive rate", title=title,
           xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left", fontsize="small")
    return _png(fig)


def importance(scores: Mapping[str, float], top: int = 20,
               title: str = "Permutation importance (AUC drop)") -> bytes:
    """Horizontal bars of the `top` largest importances (feature -> score)."""
    ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)[:top][::-1]
    fig, ax = _figure()
    ax.barh([name for name, _ in ranked], [value for _, value in ranked], color="#4c72b0")
    ax.axvline(0, color="grey", lw=0.8)
    ax.set(xlabel="mean AUC drop when the column is shuffled", title=title)
    ax.tick_params(axis="y", labelsize="small")
    return _png(fig)
