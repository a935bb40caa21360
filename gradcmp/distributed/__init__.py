"""Distributed backends (``torch-ddp:N``, ``torch-fsdp:N``, ``jax-sharded:N``,
``jax-shardmap:N``, and the loss file's own step: ``torch-dist:N``, ``jax-dist:N``).

gradcmp starts the world itself and ends it (``world.py``): torch ranks are forked from one
fresh interpreter that imported torch once (``zygote.py``) and meet on 127.0.0.1 at a port
the OS gives rank 0; a JAX world is one fresh process whose N host devices are set before JAX
is imported. Each rank runs ``rank.py``: it rebuilds the Problem, computes its shard's
gradient on the engine (``torch_engines.py``, ``jax_engines.py``) and writes it back.
``consensus.py`` holds the ranks' gradients against each other; the runner holds the result
against the full-batch reference with the bound extended by the reduction's roundings
(docs/design.md, "Distributed backends").
"""
