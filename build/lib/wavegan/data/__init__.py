"""Data sources, the local deeplake store they are ingested into, and the tf.data input pipeline."""
