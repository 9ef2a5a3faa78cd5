"""word2vec (skip-gram / CBOW with negative sampling) in PyTorch."""
import logging

# gensim logs each vectors load, each evaluation and each dictionary change at INFO ("KeyedVectors
# lifecycle event ...", "Dictionary lifecycle event ..."); under Hydra's INFO root logger those lines
# would fill a run's log. A level the user set on the "gensim" logger before importing w2v is kept.
if logging.getLogger("gensim").level == logging.NOTSET:
    logging.getLogger("gensim").setLevel(logging.WARNING)
