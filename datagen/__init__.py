"""Datasets: the generated default ad logs (``synthetic``) and MovieLens-100K conversion (``movielens``)."""
