"""The jobs service: a notebook run as a batch job with the spawn page's choices.

A job belongs to the service, not to a server: it is a row in the service's own tables
(``models``), a process (one machine) or a ``batch/v1`` Job (a cluster) started by the
mode's runner, and a result file the run writes (``execute``). The server being culled,
the service or the hub restarting: the row and the run stay, and the runner finds the
run again when it starts.
"""

JOBS_SERVICE = "jobs"  # its JupyterHub service name, in both modes
JOBS_PREFIX = f"/services/{JOBS_SERVICE}"  # where its API and page are, behind the proxy too
# A server's own token may use the jobs service (`tkhub jobs`, or curl, in a terminal).
SERVER_TOKEN_SCOPES = [
    "users:activity!user",
    "access:servers!server",
    f"access:services!service={JOBS_SERVICE}",
]
