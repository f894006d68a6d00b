"""Graphs of density peaks and their scores against an atomic model. Sees only a field callable
(density and gradient at Å positions), never a file or torch."""

from nemap.graph.peaks import (  # noqa: F401 - the package's public face
    Field,
    PeakGraph,
    centroids,
    climb_paper,
    climb_steps,
    cluster,
    discrete_roots,
    extract,
    higher_grid_point_near,
    link,
    saddle_points,
    screen,
    screen_box,
    seed_grid_shape,
    seed_positions,
    seeds_above,
    steered_roots,
    threshold_for,
)
