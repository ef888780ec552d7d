// REST calls for the analytics page: the console's client (same login, same stored tokens).

export { api, ApiError, auth, login, logout } from "../agent/api.js";
