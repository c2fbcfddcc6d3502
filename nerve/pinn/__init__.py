"""Physics-informed neural networks (DeepXDE's names): geometries and sampling, derivatives of network outputs
through ``nerve.grad(create_graph=True)``, boundary/initial/data conditions, problems and their trainer (Adam then
L-BFGS on ``fit``), inverse problems, residual-based refinement, feature and output transforms, pictures."""
from nerve.pinn.conditions import IC, Condition, DirichletBC, NeumannBC, PeriodicBC, PointSetBC
from nerve.pinn.derivatives import grad, hessian, jacobian, laplacian
from nerve.pinn.geometry import Disk, Geometry, GeometryXTime, Interval, Rectangle, TimeDomain, sample_unit
from nerve.pinn.nets import FNN, FourierFeatures, hard_dirichlet, scale_to_unit
from nerve.pinn.problem import PDE, Model, TimePDE, data_points

__all__ = ["grad", "jacobian", "hessian", "laplacian", "Geometry", "Interval", "Rectangle", "Disk",
           "TimeDomain", "GeometryXTime", "sample_unit", "Condition", "DirichletBC", "NeumannBC", "PeriodicBC", "IC",
           "PointSetBC", "PDE", "TimePDE", "Model", "data_points", "FNN", "FourierFeatures", "scale_to_unit",
           "hard_dirichlet"]
