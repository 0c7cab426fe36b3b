import os
import sys

# test helpers (faces.py, random_weights.py) import as top-level modules, also in spawned processes
sys.path.insert(0, os.path.dirname(__file__))
