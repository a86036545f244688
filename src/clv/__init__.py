"""Customer-value forecasting: the Python logic behind the dbt project."""

__version__ = "0.1.0"
