"""Datasets: the generated default ad logs (``synthetic``) and the MovieLens-100K and
TalkingData conversions (``movielens``, ``talkingdata``)."""
