"""The commands' work: the fuse runner, the trainer and the guidance they gather for each pair.

This layer brings models (`fusekit.models`) and guidance (`fusekit.guidance`) together; neither of those imports it.
"""
