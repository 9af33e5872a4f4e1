"""temarec: cross-domain sequential recommendation with LLM tags (TEMA-LLM).

Pipeline folders: data -> tagging -> features -> models -> training -> evaluation -> serving.
"""

__version__ = "0.1.0"
