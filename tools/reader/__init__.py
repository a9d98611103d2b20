"""Training (:mod:`tools.reader.train`) and export (:mod:`tools.reader.export`) of the neural reader
that ``qa.read.neural`` runs."""
