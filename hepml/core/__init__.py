"""The from-scratch NumPy core, readable as lecture notes: one algorithm a file.

Each estimator has the scikit-learn surface (``fit``, ``predict``, ``predict_proba``) and is checked
against the reference library in ``tests/core`` (sklearn, xgboost, torch, finite differences).
"""

from .decision_tree import DecisionTreeClassifier, DecisionTreeRegressor
from .gradient_boosting import GradientBoostingClassifier, GradientBoostingRegressor
from .linear_regression import LinearRegression
from .logistic_regression import LogisticRegression, Perceptron
from .mlp import MLP, DeepSets
from .random_forest import RandomForestClassifier, RandomForestRegressor

__all__ = [
    "DecisionTreeClassifier",
    "DecisionTreeRegressor",
    "DeepSets",
    "GradientBoostingClassifier",
    "GradientBoostingRegressor",
    "LinearRegression",
    "LogisticRegression",
    "MLP",
    "Perceptron",
    "RandomForestClassifier",
    "RandomForestRegressor",
]
