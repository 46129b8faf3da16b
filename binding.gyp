{
  'targets': [
    {
      'target_name': 'tun',
      'sources': ['native/tun.c'],
      'defines': ['NAPI_VERSION=8'],
      'configurations': {
        'Release': {
          'cflags!': ['-O3'],
          'cflags': ['-O2'],
        },
      },
    },
  ],
}
