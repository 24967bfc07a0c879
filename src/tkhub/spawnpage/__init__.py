"""The spawn page: the options form JupyterHub embeds on ``/hub/spawn``.

view.py         choices + previous selection + error -> what the page shows (pure)
render.py       the view as the HTML fragment JupyterHub puts inside its ``<form>``
http_errors.py  400 (bad selection) and 503 (catalog down) as JupyterHub shows them
"""
