/** Errors in the shape Verdaccio's storage layer checks: `code` and `status`. */
export interface VerdaccioError extends Error {
  code: string;
  status: number;
  statusCode: number;
}

function verdaccioError(code: string, status: number, message: string): VerdaccioError {
  return Object.assign(new Error(message), { code, status, statusCode: status });
}

export const alreadyExists = (what: string) => verdaccioError('EEXISTS', 409, `${what} already exists`);
export const notFound = (what: string) => verdaccioError('ENOENT', 404, `${what} not found`);
export const internal = (message: string) => verdaccioError('EINTERNAL', 500, message);
export const unavailable = (message: string) => verdaccioError('EUNAVAILABLE', 503, message);
