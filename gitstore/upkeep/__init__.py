"""Upkeep: the jobs that keep a repository sound, none of them on the path of a read or write.

    repair     startup repair and reindex: derived state (published refs, `draft`, the index)
               brought back in line with the commit points after a crash (`gitstore repair`,
               `gitstore reindex`)
    packing    objects and refs packed, abandoned lock files cleared, disk use counted
               (`gitstore gc`, `gitstore stats`, the service's background round)
    fsck       damage found: truncated, garbled and missing objects, dangling refs (`gitstore fsck`)
    pruning    what seed 004's pruning can mean on git: abandoned entities and unreachable
               objects removed (`gitstore prune`)

The layers above import each job from `gitstore.upkeep.api`.
"""
