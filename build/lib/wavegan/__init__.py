"""wavegan: an experiment-sweep framework for GAN stability studies on audio.

Import order matters here. deeplake 4 bundles an AWS library that aborts the whole process
(an OpenSSL version check) when TensorFlow was loaded first; loaded first, deeplake works and
TensorFlow loads fine after it. Every entry point is `python -m wavegan.<x>`, which runs this
file before anything else, so loading deeplake here makes the abort impossible to hit from them.
"""

import os
import sys

# TensorFlow's C++ start-up chatter drowns the console of every command; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if "tensorflow" in sys.modules and "deeplake" not in sys.modules:
    raise ImportError(
        "wavegan was imported after tensorflow. deeplake (used by wavegan's data store) aborts the "
        "process when tensorflow is loaded first. Fix: `import wavegan` (or `import deeplake`) "
        "before `import tensorflow`."
    )

import deeplake  # noqa: E402,F401  (must precede tensorflow, see above)

from wavegan.runtime import install_quiet_tensorflow_import  # noqa: E402

install_quiet_tensorflow_import()  # TensorFlow's start-up notices filtered out of stderr (runtime.py)

__version__ = "0.1.0"
