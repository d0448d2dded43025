"""The look-ahead planner behind the ``solar_plan`` policy kind (docs/planner.md).

Pure code only, in four parts with one concern each:

- :mod:`.outlook`: the surplus the site expects (p10/p50/p90 per 15-minute step), the one
  input the engine carries in its snapshot;
- :mod:`.slots`: the horizon from now to the departure cut into slots (15 minutes near, an
  hour further out) with their expected surplus and price;
- :mod:`.problem`: the mixed-integer programme over those slots, solved with HiGHS through
  ``scipy.optimize.milp``, giving a :class:`~.problem.PlanResult`;
- :mod:`.explain`: what the solved plan expects, in words and as a small JSON summary.

The engine kind (``optimizer/engine/kinds/solar_plan.py``) is a thin adapter: it turns the
snapshot into a :class:`~.problem.PlanInput`, applies the plan's first slot and says why.
"""
