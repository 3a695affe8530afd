"""Packaging: metadata lives in setup.cfg.

The Alembic script directory stays at the top of the repository (``alembic/``), where
``alembic.ini`` and schema owners expect it, and is shipped inside the package as
``dr_assistant_data.revisions`` so an installed layer can migrate without a checkout.

The fault campaign, ``chaos``, is installed too, as the top-level package it is in the
checkout, so ``python -m chaos`` runs the same from both (its servers are
``dr_assistant_data.testing.servers``).
"""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["dr_assistant_data", "dr_assistant_data.*", "chaos"]),
        "dr_assistant_data.revisions",
        "dr_assistant_data.revisions.versions",
    ],
    package_dir={"dr_assistant_data.revisions": "alembic"},
    package_data={"dr_assistant_data.revisions": ["script.py.mako"]},
)
