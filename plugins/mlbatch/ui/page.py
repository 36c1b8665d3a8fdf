"""The page's HTML: server-rendered, inline CSS and SVG, no script (works offline, inside Airflow's iframe)."""
from __future__ import annotations

from html import escape
from urllib.parse import quote

from mlbatch.ui.svg import Point, line_chart
from mlbatch.ui.views import RunView, StepView

STYLE = """body{font:14px system-ui,sans-serif;margin:16px;color:#1f2937}table{border-collapse:collapse;margin:8px 0}
td,th{border-bottom:1px solid #e5e7eb;padding:4px 8px;text-align:left;vertical-align:top}h1,h2{margin:8px 0}
.success{color:#15803d}.failed,.upstream_failed{color:#b91c1c}.running,.queued{color:#1d4ed8}
.bar{width:120px;height:10px;background:#e5e7eb;display:inline-block}.bar i{display:block;height:10px;background:#2563eb}
.bar i.hot{background:#dc2626}.line{stroke:#2563eb;stroke-width:2}.point{fill:#2563eb}.base{stroke:#9ca3af}
.axis,.title{font-size:11px;fill:#4b5563}.advice{background:#fef9c3;padding:2px 6px}a{color:#1d4ed8}"""


def document(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{body}</body></html>")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _state(state: str) -> str:
    return f'<span class="{escape(state)}">{escape(state)}</span>'


def batch_path(dag_id: str) -> str:
    return f"batches/{quote(dag_id, safe='')}"


def index(latest: dict[str, list[RunView]], base: str) -> str:
    rows = "".join(
        f'<tr data-testid="batch-{escape(dag_id)}"><td><a href="{base}{batch_path(dag_id)}">{escape(dag_id)}</a></td><td>'
        + " ".join(f'{_state(run.state)} ({escape(run.trigger)}, {_seconds(run.duration_s)})' for run in runs[:5])
        + "</td></tr>" for dag_id, runs in latest.items())
    return document("mlbatch", "<h1>mlbatch batches</h1><table data-testid='batches'><tr><th>batch</th>"
                               f"<th>recent runs (newest first)</th></tr>{rows}</table>")


def batch(dag_id: str, runs: list[RunView], gated: tuple[str, str] | None, advice: dict[str, str], base: str) -> str:
    oldest_first = list(reversed(runs))
    charts = line_chart("cost per run (USD)", [Point(r.run_id, r.cost_usd) for r in oldest_first], test_id="cost-chart")
    if gated:
        step, metric = gated
        points = [Point(r.run_id, v) for r in oldest_first if (v := r.metric(step, metric)) is not None]
        charts = line_chart(f"{step} {metric} (gated)", points, test_id="metric-chart") + charts
    rows = "".join(
        f'<tr data-testid="run-{escape(r.run_id)}"><td><a href="{base}{batch_path(dag_id)}/runs/{quote(r.run_id, safe="")}">'
        f'{escape(r.run_id)}</a></td><td>{_state(r.state)}</td><td>{escape(r.trigger)}</td>'
        f'<td>{_seconds(r.duration_s)}</td><td>{usd(r.cost_usd)}</td></tr>' for r in runs)
    tips = "".join(f'<li data-testid="advice-{escape(s)}"><b>{escape(s)}</b>: <span class="advice">{escape(t)}</span></li>'
                   for s, t in advice.items())
    body = (f'<p><a href="{base}">all batches</a></p><h1>{escape(dag_id)}</h1>{charts}'
            f'<h2>Right-sizing</h2><ul>{tips or "<li>every budget fits its measured peak</li>"}</ul>'
            f'<h2>Runs</h2><table data-testid="runs"><tr><th>run</th><th>state</th><th>trigger</th><th>duration</th>'
            f'<th>est. cost</th></tr>{rows}</table>')
    return document(f"mlbatch: {dag_id}", body)


def run(view: RunView, base: str, airflow_root: str) -> str:
    head = ("<tr><th>step</th><th>status</th><th>try</th><th>duration</th><th>shards</th><th>cache</th>"
            "<th>peak / budget</th><th>vCPU-s</th><th>GPU-s</th><th>est. cost</th><th>metrics</th><th>gate</th>"
            "<th>links</th></tr>")
    rows = "".join(_step_row(view, step, airflow_root) for step in view.steps)
    body = (f'<p><a href="{base}">all batches</a> / <a href="{base}{batch_path(view.dag_id)}">{escape(view.dag_id)}</a></p>'
            f'<h1>{escape(view.dag_id)} <small>{escape(view.run_id)}</small></h1>'
            f'<p>{_state(view.state)} · {escape(view.trigger)} · {_seconds(view.duration_s)} · '
            f'est. cost <b data-testid="run-cost">{usd(view.cost_usd)}</b></p>'
            f'<table data-testid="steps">{head}{rows}</table>')
    return document(f"mlbatch: {view.dag_id} {view.run_id}", body)


def _step_row(view: RunView, step: StepView, airflow_root: str) -> str:
    metrics = ", ".join(f"{escape(k)}={v:.4g}" if isinstance(v, float) else f"{escape(k)}={escape(str(v))}"
                        for k, v in step.metrics.items())
    cost = "-" if step.cost is None else f'<span title="{escape(step.cost.basis)}">{usd(step.cost.usd)}</span>'
    gate = "-" if not step.gate else f"{escape(step.gate)}: <b>{escape(step.verdict or '-')}</b>"
    shards = "-" if step.shards is None else f"{step.shards_run}/{step.shards} run"
    cache = "-" if step.cache_hit is None else ("hit" if step.cache_hit else "computed")
    cells = [f'<a id="{escape(step.name)}">{escape(step.name)}</a>', _state(step.state), str(step.try_number),
             _seconds(step.duration_s), shards, cache, _memory(step), _num(step.vcpu_s), _num(step.gpu_s), cost,
             metrics or "-", gate, _links(view, step, airflow_root)]
    return f'<tr data-testid="step-{escape(step.name)}">' + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


def usd(value: float) -> str:
    """Dollars to the cent, or to the hundredth of a cent for small steps: $0.0003, <$0.0001."""
    if value == 0:
        return "$0"
    return "<$0.0001" if value < 0.0001 else f"${value:.4f}" if value < 1 else f"${value:,.2f}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _memory(step: StepView) -> str:
    if not step.peak_mib or not step.budget_mib:
        return "-"
    share = min(step.peak_mib / step.budget_mib, 1.0)
    hot = " class='hot'" if share > 0.9 else ""
    return (f'<span class="bar" title="{share:.0%} of the budget"><i{hot} style="width:{share * 100:.0f}%"></i></span> '
            f"{step.peak_mib:.0f} / {step.budget_mib} MiB")


def _links(view: RunView, step: StepView, airflow_root: str) -> str:
    task = f"{airflow_root}/dags/{quote(view.dag_id, safe='')}/runs/{quote(view.run_id, safe='')}/tasks/{quote(step.name, safe='')}"
    links = [f'<a href="{task}" target="_top">log</a>']
    if step.mlflow_page:
        links.append(f'<a href="{escape(step.mlflow_page)}" target="_blank">MLflow run</a>')
    if step.output:
        links.append(f'<span title="{escape(step.output)}">outputs {escape(step.output.rstrip("/").rsplit("/", 1)[-1][:12])}</span>')
    return " · ".join(links)
