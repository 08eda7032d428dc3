"""The Check In and Out at Work service as the gate sees it: the client, its credentials, the REST
contract (every name the service sees, in one place) and the remark codes it answers with."""
