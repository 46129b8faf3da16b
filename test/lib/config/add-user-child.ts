/**
 * Run as a separate process by users-file.test.ts: adds one user to a users file through
 * `updateUsersFile`, so several of these racing show whether the lock keeps every entry.
 */
import {updateUsersFile} from '../../../src/lib/config/users-file.js'

const [file, name] = process.argv.slice(2)
await updateUsersFile(file, (users) => users.add(name, ['racers'], `$6$fixedsalt$${name}`), {
  create: true,
})
