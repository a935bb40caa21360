"""The Problem a rank rebuilds from its world's job (world.py writes the job; rank.py and the
engines read it): the model from its recipe, the dataset and parameters as the parent had
them."""

from __future__ import annotations


def rebuild_problem(job: dict):
    """The parent's Problem, in this fresh process."""
    from ..models import get_model, mlp
    from ..problem import Problem

    recipe = job["recipe"]
    if recipe and recipe[0] == "file":
        from ..loading import lossfile

        model = lossfile.load(recipe[1])
    elif recipe and recipe[0] == "mlp":
        model = mlp.make(recipe[1], recipe[2])
    else:
        model = get_model(job["model"])
    return Problem(model, job["data"], job["params"])
