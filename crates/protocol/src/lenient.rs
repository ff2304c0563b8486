//! Gson-lenient JSON → strict JSON. TODO(helper): implement.
