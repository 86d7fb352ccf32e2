"""`capcse experiment`: a table of the papers' shape = rows (recipes with overrides, evaluated models, or
commands) x seeds, each run a subprocess in its own folder, resumable, aggregated as mean ± sample std.

``spec`` reads the YAML spec (experiments/*.yaml) and expands it into runs; ``runner`` runs them (parallel,
with a thread budget, finished runs skipped); ``plan`` is the dry run; ``aggregate`` builds the table
(markdown, JSON, plot with error bars; measured − published when the spec carries the paper's numbers).
"""

from capcse.experiment.aggregate import aggregate, markdown, mean_std, write_aggregate
from capcse.experiment.runner import Context, ExperimentError, run_experiment
from capcse.experiment.spec import Row, Run, Spec, load_spec, plan_runs, select

__all__ = ["Context", "ExperimentError", "Row", "Run", "Spec", "aggregate", "load_spec", "markdown", "mean_std",
           "plan_runs", "run_experiment", "select", "write_aggregate"]
