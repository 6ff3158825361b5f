// GNU extensions the account tools are started with. Swift's Glibc module is built without
// _GNU_SOURCE, so pipe2 and posix_spawn_file_actions_addclosefrom_np are not visible to it
// (and defining _GNU_SOURCE here would change struct layouts other modules see). The two
// prototypes are declared as glibc ≥ 2.34 defines them; they can go once Glibc exports them.
#ifndef CLOUDLOGIN_CSPAWN_SHIM_H
#define CLOUDLOGIN_CSPAWN_SHIM_H

#include <fcntl.h>
#include <spawn.h>

extern int pipe2(int pipefd[2], int flags);
extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from);

/// pipe2(fds, O_CLOEXEC): neither end leaks into another child of the host process.
static inline int CSpawn_pipe_cloexec(int *_Nonnull fds) { return pipe2(fds, O_CLOEXEC); }

/// Closes every descriptor from `lowest` up in the child (the host's open files stay home).
static inline int CSpawn_close_from(posix_spawn_file_actions_t *_Nonnull actions, int lowest) {
    return posix_spawn_file_actions_addclosefrom_np(actions, lowest);
}

#endif
