# Hidden startup of the grading kernel (after preamble.py): no network while grading.
# The sandbox's network namespace (where the machine allows one) already leaves nothing to reach;
# this gives the learner a clear message, and is the barrier where no namespace could be made.
# Unix sockets (multiprocessing, the kernel's own IPC) stay allowed.
import socket as _ag_socket


def _ag_install_network_guard():
    family_ok = {getattr(_ag_socket, "AF_UNIX", None)}
    message = ("network access is disabled while grading (sandbox): "
               "this submission may not connect to {}")

    def _refuse(sock, address):
        if sock.family not in family_ok:
            raise PermissionError(message.format(address))

    base = _ag_socket.socket

    class socket(base):  # noqa: N801 - the name learner code sees
        def connect(self, address):
            _refuse(self, address)
            return super().connect(address)

        def connect_ex(self, address):
            _refuse(self, address)
            return super().connect_ex(address)

        def sendto(self, data, *args):
            _refuse(self, args[-1] if args else None)
            return super().sendto(data, *args)

    socket.__module__, socket.__qualname__ = base.__module__, base.__qualname__
    _ag_socket.socket = socket

    def create_connection(address, *args, **kwargs):
        raise PermissionError(message.format(address))

    _ag_socket.create_connection = create_connection


_ag_install_network_guard()
del _ag_install_network_guard, _ag_socket


def _ag_install_cell_cleanup():
    # A cell that failed may leave processes behind (a fork bomb's copies of this kernel hang on
    # its sockets, holding the sandbox's process slots): end them, and reap what has exited, so
    # the notebook's later cells can still start threads and processes.
    import os

    try:
        import psutil
    except ImportError:  # pragma: no cover - ships with ipykernel
        return
    shell = get_ipython()  # noqa: F821 - defined where the kernel runs this file
    if shell is None:
        return

    def cleanup(result):
        if result.success:
            return
        for child in psutil.Process().children(recursive=True):
            try:
                child.kill()
            except psutil.Error:
                pass
        while True:
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break

    shell.events.register("post_run_cell", cleanup)


_ag_install_cell_cleanup()
del _ag_install_cell_cleanup
