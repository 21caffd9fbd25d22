"""The Airflow names whose home moved between Airflow 3.0 and the newest 3.x, imported in one place.

Supported: Airflow 3.0 (what managed services such as MWAA run) through the newest 3.x. On 3.0
``airflow.sdk`` has no ``BaseHook`` and no ``conf``, and ``airflow.sdk.exceptions`` has no
``AirflowException``; 3.1 has no ``airflow.sdk.conf``. Every provider module imports these names from here,
so a move in a future Airflow is one edit. The suite runs on the oldest and the newest supported Airflow.
"""

from __future__ import annotations

try:  # Airflow >= 3.1
    from airflow.sdk import BaseHook
except ImportError:  # Airflow 3.0
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef,assignment,attr-defined,unused-ignore]

try:  # Airflow >= 3.1
    from airflow.sdk.exceptions import AirflowException, AirflowFailException
except ImportError:  # Airflow 3.0
    from airflow.exceptions import AirflowException, AirflowFailException  # type: ignore[no-redef,assignment,attr-defined,unused-ignore]

try:  # Airflow >= 3.2
    from airflow.sdk import conf
except ImportError:  # Airflow 3.0, 3.1
    from airflow.configuration import conf  # type: ignore[no-redef,assignment,attr-defined,unused-ignore]

try:  # Airflow >= 3.1
    from airflow.sdk.log import mask_secret
except ImportError:  # Airflow 3.0
    from airflow.sdk.execution_time.secrets_masker import mask_secret  # type: ignore[no-redef,assignment,attr-defined,unused-ignore]

__all__ = ["AirflowException", "AirflowFailException", "BaseHook", "conf", "mask_secret"]
