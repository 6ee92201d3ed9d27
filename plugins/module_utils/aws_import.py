# -*- coding: utf-8 -*-
# Copyright: (c) 2026, heracles.secrets contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""boto3 on first use: importing it costs about 60 ms, which every module would pay at start (through the key store
and the snapshot signer) although most runs never talk to AWS."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib
import importlib.util

HAS_BOTO3 = importlib.util.find_spec("boto3") is not None


class LazyModule(object):
    """Stands for module ``name``; imports it when an attribute is first read."""

    def __init__(self, name):
        self._name = name

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(importlib.import_module(self._name), attr)


boto3 = LazyModule("boto3")
botocore_exceptions = LazyModule("botocore.exceptions")
