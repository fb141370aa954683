"""kubesim: a small Kubernetes API server in one process, for tests and the sandbox.

It speaks the API over real HTTP (the official client and kubectl work against it) and keeps everything in
memory. :class:`KubernetesEmulator` is the API server; :class:`SimulatedControllers` plays the controllers
(rollouts, Jobs, CronJobs) on its store. It depends on the standard library and PyYAML only. See README.md.
"""

from .controllers import SimulatedControllers
from .server import Fault, KubernetesEmulator, kubeconfig_for

__all__ = ["Fault", "KubernetesEmulator", "SimulatedControllers", "kubeconfig_for"]
