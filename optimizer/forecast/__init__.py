"""What a look-ahead planner plans with: the site's expected PV and surplus, and the car's habits.

Two pure modules over history, apart from any policy: :mod:`optimizer.forecast.solar` (a
clear-sky model of the site's own panels scaled by a clear-sky index learned from recent
production) and :mod:`optimizer.forecast.habits` (when the car usually leaves and how much it
takes, from session history). Both are causal: they use only what had ended before ``now``.

Nothing is imported here, so ``import optimizer.forecast`` never loads numpy or pvlib; the
CLI and the service import the submodules only when they use them (issue 16: a fast
``evopt --help``).
"""
