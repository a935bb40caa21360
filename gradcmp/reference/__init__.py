"""The truth every result is held against (docs/design.md, "The reference").

- ``exact``: datasets and parameters as exact rationals (the linear model's reference);
- ``highprec``: high-precision numbers (MPFR) with a running error bound, and their operation
  rules; the ``xp`` namespace a generic ``loss`` is evaluated with;
- ``trace_jax`` / ``trace_torch``: one tracer per framework, which evaluates the graph that
  framework actually differentiates (shadow evaluation, ``shadow``);
- ``align`` and ``port``: the port verdict and the located divergence of two sides;
- ``compute``: the reference of a run, per dtype and per side.

This package imports nothing eagerly: ``data`` uses ``reference.exact`` without pulling in
the rest.
"""
